"""Tensor maths with no knowledge of plugins, runs or files: distances, k-NN, FID/KID/MMD/PRDC, covariance
estimates, mixtures, bootstrap intervals. Everything here takes and returns tensors or plain numbers."""
