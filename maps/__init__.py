"""Maps: no models. Geo selectors and folium page builders live here."""
