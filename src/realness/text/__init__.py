"""The words about an image: the verdict a description opens with."""
