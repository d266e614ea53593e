"""The words about an image: descriptions from every source, and the verdict they open with."""
