"""Cloudflare hooks, operators and triggers for the PRISM maintenance bundle."""
