"""The pure rules (no SQL, no HTTP): reservations, matching, listings. They import only the model."""
