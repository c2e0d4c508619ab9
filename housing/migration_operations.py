"""Migration operations of our own."""

from django.db import migrations


class AlterFieldOnPostgreSQL(migrations.AlterField):
    """AlterField whose database change runs on PostgreSQL only.

    For a geometry field's spatial_index: PostGIS drops or creates the GiST index, while
    Django cannot alter a SpatiaLite geometry column at all (its type is not SQL). On
    SpatiaLite the model state still changes and the R*Tree index stays: it costs an
    embedded development database a little time per history row, and nothing else.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
