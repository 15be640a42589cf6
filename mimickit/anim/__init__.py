"""Characters and motions: kinematic character model, motion clips, the motion library."""
