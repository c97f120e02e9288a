<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Nested grouping: per authority key (AGS), then per status, both sorted. -->
  <xsl:template match="/antraege">
    <bericht>
      <xsl:for-each-group select="antrag" group-by="@ags">
        <xsl:sort select="current-grouping-key()" order="descending"/>
        <gemeinde ags="{current-grouping-key()}" land="{substring(current-grouping-key(), 1, 2)}">
          <xsl:for-each-group select="current-group()" group-by="@status">
            <xsl:sort select="count(current-group())" order="descending"/>
            <xsl:sort select="current-grouping-key()"/>
            <status wert="{current-grouping-key()}">
              <xsl:for-each select="current-group()">
                <xsl:sort select="name"/>
                <xsl:sort select="vorname"/>
                <a id="{@id}"><xsl:value-of select="name, vorname" separator=", "/></a>
              </xsl:for-each>
            </status>
          </xsl:for-each-group>
        </gemeinde>
      </xsl:for-each-group>
    </bericht>
  </xsl:template>
</xsl:stylesheet>
