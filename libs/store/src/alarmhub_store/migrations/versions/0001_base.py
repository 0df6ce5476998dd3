"""Base schema: the jurisdiction tree and the registries of the contract.

Each area (dispatch, contactid, gps, camera) adds its own alembic branch on top of this revision;
``upgrade heads`` applies them all.

Revision ID: 0001_base
Revises:
"""

from alembic import op

revision = "0001_base"
down_revision = None
branch_labels = ("base",)
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE units (
            id          text PRIMARY KEY,
            name        text NOT NULL,
            name_en     text,
            tier        smallint NOT NULL CHECK (tier BETWEEN 1 AND 4),
            parent_id   text REFERENCES units(id),
            kind        text NOT NULL DEFAULT 'police',   -- police | fire | medical | department | site
            synthetic   boolean NOT NULL DEFAULT false,
            geometry    jsonb,                             -- GeoJSON, WGS-84
            properties  jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX units_parent_idx ON units(parent_id);

        -- DC-09 accounts are unique only within an alarm company: (line, account) is the key,
        -- matching source.device_id = 'L<line>#<account>'.
        CREATE TABLE accounts (
            line                 text NOT NULL DEFAULT '0',
            account              text NOT NULL,
            company              text NOT NULL,
            key_hex              text,
            encryption_required  boolean NOT NULL DEFAULT false,
            supervision_s        integer CHECK (supervision_s IS NULL OR supervision_s > 0),
            site_name            text,
            site_address         text,
            lat                  double precision CHECK (lat IS NULL OR lat BETWEEN -90 AND 90),
            lon                  double precision CHECK (lon IS NULL OR lon BETWEEN -180 AND 180),
            zones                jsonb NOT NULL DEFAULT '{}'::jsonb,
            contacts             jsonb NOT NULL DEFAULT '[]'::jsonb,
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (line, account)
        );
        CREATE INDEX accounts_company_idx ON accounts(company);

        CREATE TABLE vehicles (
            device_id     text PRIMARY KEY,
            protocol      text NOT NULL,
            plate         text,
            plate_colour  smallint,
            description   text,
            owner         text,
            contact       text,
            armed         boolean NOT NULL DEFAULT false,
            flagged       boolean NOT NULL DEFAULT false,   -- unregistered terminal accepted by policy
            auth_code     text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX vehicles_plate_idx ON vehicles(plate, plate_colour);

        CREATE TABLE cameras (
            id          text PRIMARY KEY,                    -- the 20-digit GB/T 28181 code where there is one
            name        text NOT NULL,
            type        text,
            lat         double precision CHECK (lat IS NULL OR lat BETWEEN -90 AND 90),
            lon         double precision CHECK (lon IS NULL OR lon BETWEEN -180 AND 180),
            ip          text,
            mac         text,
            channel     integer,
            unit        text,
            network     text CHECK (network IS NULL OR network IN ('police_video', 'social_video')),
            category    text,
            online      boolean NOT NULL DEFAULT false,
            onvif_url   text,
            username    text,
            password    text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX cameras_unit_idx ON cameras(unit);

        CREATE TABLE platforms (
            user_id         bigint PRIMARY KEY,
            password        text NOT NULL,
            gnss_center_id  bigint NOT NULL,
            name            text,
            encrypt         jsonb,                           -- {"m1":…, "ia1":…, "ic1":…, "key":…}
            allowed         jsonb NOT NULL DEFAULT '{}'::jsonb,
            link_status     text NOT NULL DEFAULT 'down',
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE platforms, cameras, vehicles, accounts, units CASCADE")
