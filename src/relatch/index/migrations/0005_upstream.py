# Kept upstream pages and stored upstream files (relatch.index.upstream, issue 20).

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('index', '0004_project_status_serial_read'),
    ]

    operations = [
        migrations.CreateModel(
            name='UpstreamFile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url_path', models.CharField(max_length=600, unique=True)),
                ('storage_name', models.CharField(max_length=700)),
                ('sha256', models.CharField(max_length=64)),
                ('size', models.PositiveBigIntegerField()),
                ('project_name', models.CharField(max_length=200)),
                ('stored_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['url_path'],
            },
        ),
        migrations.CreateModel(
            name='UpstreamPage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('normalized_name', models.CharField(max_length=200, unique=True)),
                ('data', models.JSONField(default=dict)),
                ('etag', models.CharField(blank=True, max_length=500)),
                ('digest', models.CharField(max_length=64)),
                ('fetched_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['normalized_name'],
            },
        ),
    ]
