import { render } from 'preact';
import { App } from './app';
import { interceptLinks } from './router';
import './styles.css';

// Apply the saved theme before the first paint.
const saved = localStorage.getItem('clew-theme');
if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;

interceptLinks();
render(<App />, document.getElementById('app')!);
