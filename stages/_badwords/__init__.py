"""The LDNOOBW word lists (lists/, CC-BY-4.0, see lists/SOURCE.md) and the matcher the
`badwords` stage counts them with."""
