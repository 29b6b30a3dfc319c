# bench: `make bench` (never part of `make check`)
