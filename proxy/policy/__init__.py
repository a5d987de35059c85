"""Policy: who may send what where — rules, field constraints, their loader and test cases.

May import: messages, errors, config_errors, jsonjs. Nothing above it.
"""
