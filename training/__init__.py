"""Simulation environments, data generation and trainers for the learned controllers."""
