//! Runs experiment plans on the local testbed, point by point, with resume
