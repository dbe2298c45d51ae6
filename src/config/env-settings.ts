import { z } from 'zod';
import { formatPath } from '../util/path.js';

/*
 * How the flat environment becomes the nested configuration. A setting is a zod schema registered
 * under its variable (`setting('PORT', int(0, 65535).default(4000), 'HTTP port …')`), placed where
 * its value belongs in a nested `z.object`. From that one declaration come the parsed value and
 * its type (the nested object's `z.output`), the message for a bad value (named by the variable),
 * and the README's configuration table (`npm run config:docs`).
 */

interface SettingInfo {
  readonly variable: string;
  /** The README's "default" cell when the schema's own default does not say it (a derived one). */
  readonly shownDefault?: string | undefined;
}

/** A boolean setting as the environment spells it. */
export const flag = z.enum(['true', 'false']);

/** A comma-separated list (blanks around items and empty items dropped), each item checked by `item`. */
export function commaList<T extends z.ZodType<unknown, string>>(item: T) {
  return z
    .string()
    .transform((list) =>
      list
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));
}

/** The settings among all zod schemas: a registry, so the schemas stay ordinary zod schemas. */
const settings = z.registry<SettingInfo>();

/**
 * The environment variable `variable`, checked by `schema`; `description` (markdown) is its row in
 * the README's configuration table. State a default with `.default()` in the environment's form
 * (hours, "true"), before any `.transform()` into the configuration's form.
 */
export function setting<T extends z.ZodType>(variable: string, schema: T, description: string, options: { shownDefault?: string } = {}): T {
  const described = schema.describe(description) as T;
  settings.add(described, { variable, shownDefault: options.shownDefault });
  return described;
}

/** Settings whose keys are their variables (groups read by name, e.g. the standard `OTEL_*`). */
export function settingsByName<T extends Record<string, z.ZodType>>(shape: T): T {
  for (const [variable, schema] of Object.entries(shape)) {
    if (!schema.description) throw new Error(`${variable} has no description`);
    settings.add(schema, { variable });
  }
  return shape;
}

/** One setting, as the README's configuration table shows it. */
export interface SettingRow {
  readonly variable: string;
  /** Where its value lands in the configuration (`relay.batchSize`). */
  readonly path: readonly string[];
  /** The default as set in the environment; undefined: none. */
  readonly defaultValue: unknown;
  readonly shownDefault: string | undefined;
  readonly description: string;
  /** The description of the nearest group around it (`z.object({…}).describe('Kafka')`), if any. */
  readonly group: string | undefined;
}

/** Every setting of a nested schema, in declaration order. */
export function settingRows(schema: z.ZodObject, path: readonly string[] = [], group?: string): SettingRow[] {
  return Object.entries(schema.shape).flatMap(([key, field]): SettingRow[] => {
    const info = settings.get(field);
    if (info) {
      const { variable, shownDefault } = info;
      return [{ variable, path: [...path, key], defaultValue: defaultOf(field), shownDefault, description: field.description ?? '', group }];
    }
    if (field instanceof z.ZodObject) return settingRows(field, [...path, key], field.description ?? group);
    throw new Error(`${formatPath([...path, key])} is neither a setting nor a group of settings`);
  });
}

/** The value `.default()` gives, looking through `.transform()` and `.describe()`. */
function defaultOf(schema: z.ZodType): unknown {
  const def = schema._zod.def;
  if (def.type === 'default') return (def as z.core.$ZodDefaultDef).defaultValue;
  if (def.type === 'pipe') return defaultOf((def as z.core.$ZodPipeDef).in as z.ZodType);
  return undefined;
}

/** The nested input of `schema`: each setting's variable from `env`, a blank one as unset. */
export function nestEnv(schema: z.ZodObject, env: Record<string, string | undefined>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const row of settingRows(schema)) {
    const value = env[row.variable];
    if (value === undefined || value === '') continue;
    let at = input;
    for (const key of row.path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
    at[row.path.at(-1)!] = value;
  }
  for (const key of groupKeys(schema)) fillGroups(schema, input, key);
  return input;
}

function groupKeys(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape).filter((key) => !settings.has(schema.shape[key]!));
}

/** Groups with nothing set are still objects, so their settings' defaults apply. */
function fillGroups(schema: z.ZodObject, input: Record<string, unknown>, key: string): void {
  const group = schema.shape[key] as z.ZodObject;
  const inner = (input[key] ??= {}) as Record<string, unknown>;
  for (const child of groupKeys(group)) fillGroups(group, inner, child);
}

/**
 * "PORT: Too small: expected number to be >=0; KAFKA_SASL_USERNAME: is required …": issues named
 * by the variable of the setting they are about, or by their path when they are about no setting.
 */
export function describeEnvIssues(schema: z.ZodObject, error: z.ZodError): string {
  const variables = new Map(settingRows(schema).map((row) => [row.path.join('\0'), row.variable]));
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String);
      for (let length = path.length; length > 0; length--) {
        const variable = variables.get(path.slice(0, length).join('\0'));
        if (variable) return `${formatPath([variable, ...issue.path.slice(length)])}: ${issue.message}`;
      }
      const where = formatPath(issue.path);
      return where ? `${where}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
