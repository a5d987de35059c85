"""Rate limits: buckets (memory and Redis), the venue profiles they are charged against, the gate.

May import: messages, errors, clock, policy (RateSpec), settings. The profile YAML files ship in data/.
"""
