"""Benchmarks: what the bot costs per image and how it scales (`python -m benchmarks.run`)."""
