/** Every reproduction registers itself on import; this list is the one place that imports them. */
export {};
