"""tasks.result_files: what each stored result holds (format, pixel size, bytes)

Revision ID: a7c3e1f05b16
Revises: 7c1f3a9d2b40
Create Date: 2026-11-30 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c3e1f05b16'
down_revision = '7c1f3a9d2b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_files', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('result_files')
