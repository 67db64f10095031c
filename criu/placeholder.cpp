// replaced by the CRIU driver
