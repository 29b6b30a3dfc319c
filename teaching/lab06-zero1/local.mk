# lab06-zero1: not written yet (teaching/README.md)
