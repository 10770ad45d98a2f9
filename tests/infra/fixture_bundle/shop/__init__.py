"""Stands for the user's package of a real bundle."""
