# lab09-tensor-parallel: not written yet (teaching/README.md)
