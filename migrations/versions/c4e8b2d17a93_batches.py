"""batches; tasks.batch_id / batch_index / batch_ref; webhook deliveries of batches

Revision ID: c4e8b2d17a93
Revises: a7c3e1f05b16
Create Date: 2026-11-30 18:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8b2d17a93'
down_revision = 'a7c3e1f05b16'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'batches',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('ended', sa.Integer(), nullable=False),
        sa.Column('webhook_url', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_batches_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batches')),
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index('ix_batches_user_created', ['user_id', 'created_at'], unique=False)
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('batch_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('batch_ref', sa.String(length=100), nullable=True))
        batch_op.create_foreign_key('fk_tasks_batch_id_batches', 'batches', ['batch_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index('ix_tasks_batch', ['batch_id', 'batch_index'], unique=False)
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.String(length=32), nullable=True))
        batch_op.alter_column('task_id', existing_type=sa.String(length=32), nullable=True)
        batch_op.create_foreign_key(
            'fk_webhook_deliveries_batch_id_batches', 'batches', ['batch_id'], ['id'], ondelete='CASCADE'
        )
        batch_op.create_index('ix_webhook_deliveries_batch', ['batch_id', 'id'], unique=False)


def downgrade():
    op.execute('DELETE FROM webhook_deliveries WHERE task_id IS NULL')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_batch')
        batch_op.drop_constraint('fk_webhook_deliveries_batch_id_batches', type_='foreignkey')
        batch_op.alter_column('task_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column('batch_id')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_batch')
        batch_op.drop_constraint('fk_tasks_batch_id_batches', type_='foreignkey')
        batch_op.drop_column('batch_ref')
        batch_op.drop_column('batch_index')
        batch_op.drop_column('batch_id')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index('ix_batches_user_created')
    op.drop_table('batches')
