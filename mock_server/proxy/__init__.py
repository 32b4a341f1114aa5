"""`loyalty-mock proxy`: a validating, recording reverse proxy in front of the real vendors."""
