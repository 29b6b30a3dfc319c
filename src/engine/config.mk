# src/engine: DeepSpeed configuration
