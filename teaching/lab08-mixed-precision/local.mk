# lab08-mixed-precision: not written yet (teaching/README.md)
