<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Normalising data with replace(): groups, anchors, whitespace, escaping of $. -->
  <xsl:template match="/adressen">
    <norm>
      <xsl:for-each select="adresse">
        <a id="{@id}"
           strasse="{replace(normalize-space(strasse), '^(.*?)\s*(\d+\s*[a-z]?(-\d+)?)$', '$1|$2')}"
           strasse-kurz="{replace(strasse, 'straße(\s|$)', 'str.$1')}"
           tel="{replace(replace(tel, '[^\d+]', ''), '^0', '+49')}"
           iban="{replace(upper-case(replace(iban, '\s', '')), '(.{4})', '$1 ') => normalize-space()}"
           mail="{lower-case(mail)}"
           plz="{replace(ort, '^(\d+).*', '$1')}"/>
      </xsl:for-each>
      <x a="{replace('Preis: 5 EUR', '(\d+) EUR', '\$$1')}" b="{replace('aaa', 'a+?', 'b')}" c="{replace('abcabc', 'b', '')}" d="{replace('Straße', 'STRASSE', 'x', 'i')}"/>
    </norm>
  </xsl:template>
</xsl:stylesheet>
