"""Training-data simulation: profiles, emissivity spectra and the training-set builder."""
