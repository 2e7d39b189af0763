"""Reader fixtures: the test servers (moto S3, range-capable HTTP) and the L1T HDF / COG + STAC pair."""
from servers import closed_endpoint, http_server, l1t_pair, s3_server, stalled_endpoint  # noqa: F401
