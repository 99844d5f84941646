import { createRoot } from 'react-dom/client';
import { h } from './h.js';
import { Root } from './App.js';

createRoot(document.getElementById('root')).render(h(Root));
