"""Land-cover classes at retrieval time: map legends (codes → classes) and the NDVI/brightness-temperature rules."""
