// replaced by the GPU driver
