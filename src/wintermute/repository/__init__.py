"""Signed package repositories: the archive key, APT (reprepro) and pacman (repo-add)."""
