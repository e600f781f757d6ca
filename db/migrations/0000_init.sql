CREATE TABLE `apps` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`repository` text NOT NULL,
	`start_command` text NOT NULL,
	`install_command` text,
	`port` integer NOT NULL,
	`image` text,
	`gpu` text,
	`gpu_devices` text,
	`template_id` text,
	`host_id` text,
	`status` text DEFAULT 'STOPPED' NOT NULL,
	`health` text DEFAULT 'unknown' NOT NULL,
	`last_probe_at` text,
	`phase` text,
	`last_error` text,
	`commit_sha` text,
	`usage` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "apps_status_enum" CHECK("apps"."status" IN ('RUNNING', 'STARTING', 'STOPPED')),
	CONSTRAINT "apps_health_enum" CHECK("apps"."health" IN ('reachable', 'unreachable', 'unknown')),
	CONSTRAINT "apps_port_range" CHECK("apps"."port" BETWEEN 1024 AND 65535)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `apps_name_unique` ON `apps` (`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `apps_host_port` ON `apps` (`host_id`,`port`);--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target` text,
	`source_address` text,
	`outcome` text NOT NULL,
	`detail` text,
	CONSTRAINT "audit_outcome_enum" CHECK("audit_log"."outcome" IN ('ok', 'denied', 'error'))
);
--> statement-breakpoint
CREATE INDEX `audit_at` ON `audit_log` (`at`);--> statement-breakpoint
CREATE TABLE `commands` (
	`id` text PRIMARY KEY NOT NULL,
	`host_id` text NOT NULL,
	`app_id` text,
	`app_name` text,
	`action` text NOT NULL,
	`params` text DEFAULT '{}' NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`issued_at` text NOT NULL,
	`expires_at` text NOT NULL,
	`delivered_at` text,
	`finished_at` text,
	`result` text,
	`error` text,
	`created_by` text,
	CONSTRAINT "commands_state_enum" CHECK("commands"."state" IN ('pending', 'delivered', 'done', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `commands_host_state` ON `commands` (`host_id`,`state`);--> statement-breakpoint
CREATE TABLE `app_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`app_id` text,
	`app_name` text NOT NULL,
	`type` text NOT NULL,
	`data` text DEFAULT '{}' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `app_events_app` ON `app_events` (`app_name`,`id`);--> statement-breakpoint
CREATE TABLE `enrollments` (
	`id` text PRIMARY KEY NOT NULL,
	`token_hash` text NOT NULL,
	`host_name` text,
	`expires_at` text NOT NULL,
	`used_at` text,
	`host_id` text,
	`created_by` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `enrollments_token_hash_unique` ON `enrollments` (`token_hash`);--> statement-breakpoint
CREATE TABLE `hosts` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`public_key` text,
	`online` integer DEFAULT false NOT NULL,
	`last_seen_at` text,
	`address` text,
	`facts` text DEFAULT '{}' NOT NULL,
	`connected_to` text,
	`revoked_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	CONSTRAINT "hosts_online_bool" CHECK("hosts"."online" IN (0, 1))
);
--> statement-breakpoint
CREATE TABLE `marketplace_templates` (
	`slug` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`summary` text NOT NULL,
	`repository` text NOT NULL,
	`start_command` text NOT NULL,
	`install_command` text,
	`default_port` integer NOT NULL,
	`gpu_mode` text DEFAULT 'none' NOT NULL,
	`gpu_count` integer,
	`gpu_min_memory_mib` integer,
	`image` text,
	`keep_paths` text DEFAULT '[]' NOT NULL,
	`cap_add` text DEFAULT '[]' NOT NULL,
	`homepage` text,
	`origin_app_id` text,
	`source` text DEFAULT 'seed' NOT NULL,
	`position` integer DEFAULT 1000 NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	FOREIGN KEY (`origin_app_id`) REFERENCES `apps`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "templates_gpu_mode_enum" CHECK("marketplace_templates"."gpu_mode" IN ('none', 'optional', 'required')),
	CONSTRAINT "templates_source_enum" CHECK("marketplace_templates"."source" IN ('seed', 'promoted'))
);
