"""The Tuna model: VAE → representation encoder → connector → Qwen2.5 decoder → LM and flow heads."""
