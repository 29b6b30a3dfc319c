# lab11-grid: not written yet (teaching/README.md)
