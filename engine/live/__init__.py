"""The live engine process (DESIGN.md §4): kernels around asyncio, orders, control."""
