// createElement under a short name: the app is plain JavaScript (no JSX step).
export { createElement as h, Fragment } from 'react';
