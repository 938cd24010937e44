"""What belongs to one study alone (big_vision's `configs/proj/<project>/`):
a module per study whose report needs more than a config holds, imported
by that study's config only."""
