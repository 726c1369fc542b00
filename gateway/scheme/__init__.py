"""Facts of the clearing scheme shared by message validation and the clearing core."""
