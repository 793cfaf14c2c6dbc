/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the API lives when it does not share the page's origin, e.g. http://127.0.0.1:4001. */
  readonly VITE_API_BASE?: string;
}
