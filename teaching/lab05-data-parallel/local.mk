# lab05-data-parallel: not written yet (teaching/README.md)
