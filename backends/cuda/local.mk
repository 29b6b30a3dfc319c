# backends/cuda: built only when configure found the CUDA toolkit
