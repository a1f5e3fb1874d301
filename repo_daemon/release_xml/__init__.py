"""release.xml: the model of what a release consists of, and reading a provider's file into it."""
