<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Quantified checks used in validation rules. -->
  <xsl:template match="/antraege">
    <checks>
      <alle-plz-5 wert="{every $a in antrag satisfies string-length($a/@plz) = 5}"/>
      <ein-abgelehnt wert="{some $a in antrag satisfies $a/@status = 'abgelehnt'}"/>
      <alle-betraege wert="{every $b in antrag/@betrag satisfies $b castable as xs:decimal}"/>
      <leer-every wert="{every $x in () satisfies false()}"/>
      <leer-some wert="{some $x in () satisfies true()}"/>
      <paar wert="{some $a in antrag, $b in antrag satisfies ($a/name = $b/name and $a/@id ne $b/@id)}"/>
      <xsl:for-each select="antrag">
        <a id="{@id}" ok="{every $f in (@plz, name, @betrag) satisfies normalize-space($f) != ''}"
           general="{@ags = ('11000000', '02000000')}" value="{@status eq 'offen'}"/>
      </xsl:for-each>
    </checks>
  </xsl:template>
</xsl:stylesheet>
