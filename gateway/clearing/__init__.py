"""The clearing core's domain: pure, no I/O, no clock reads, money in integer minor units."""
