"""The dialogue, one module per feature; routes.py maps states, actions and buttons to them."""
