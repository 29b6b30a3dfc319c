# src/engine
