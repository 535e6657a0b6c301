"""Danish companion bot for runners rehabilitating hamstring tendinopathy or hip pain."""
