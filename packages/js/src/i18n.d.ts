export type Locale = "en" | "zh-CN";
export declare const CATALOGS: Record<string, Record<string, string>>;
/** "zh-CN" when the first known tag is Simplified Chinese, else "en". */
export declare function pickLocale(languages?: readonly string[]): Locale;
export declare function getLocale(): Locale;
export declare function setLocale(locale: string): Locale;
/** The English sentence in the current language, {placeholders} filled. */
export declare function t(english: string, params?: Record<string, string | number>): string;
export declare function localizePage(doc?: Document): void;
