"""The Gradio page: one module per tab, and `common` (what every tab shares)."""
