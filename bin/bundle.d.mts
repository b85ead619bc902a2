/** dist/, built from the sources as they are now (building it if not); throws if it can't be. */
export declare function ensureBundle (): Promise<string>
